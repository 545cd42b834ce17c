def test_login_and_caseload(client, world, login):
    response = login(world.cw_a)
    assert response.status_code == 302
    page = client.get("/caseload")
    assert page.status_code == 200
    assert "Alice Avery" in page.text
    assert "Bobby Brook" not in page.text
